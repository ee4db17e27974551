"""Operations on the warehouse: a table's history and lineage, rollback of a run, maintenance."""
