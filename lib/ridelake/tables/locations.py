"""The 176 Delhi NCR place names of the source file (docs/contract.md §6).

Pickup and drop locations are both drawn from this one set; the generator never gives a
booking the same pickup and drop.
"""

from __future__ import annotations

__all__ = ["LOCATIONS"]

#: Every pickup/drop location name, in ascending order (176 names).
LOCATIONS: tuple[str, ...] = (
    "AIIMS", "Adarsh Nagar", "Akshardham", "Ambience Mall", "Anand Vihar", "Anand Vihar ISBT",
    "Ardee City", "Arjangarh", "Ashok Park Main", "Ashok Vihar", "Ashram", "Aya Nagar", "Azadpur",
    "Badarpur", "Badshahpur", "Bahadurgarh", "Barakhamba Road", "Basai Dhankot",
    "Bhikaji Cama Place", "Bhiwadi", "Botanical Garden", "Central Secretariat", "Chanakyapuri",
    "Chandni Chowk", "Chhatarpur", "Chirag Delhi", "Civil Lines Gurgaon", "Connaught Place",
    "Cyber Hub", "DLF City Court", "DLF Phase 3", "Delhi Gate", "Dilshad Garden", "Dwarka Mor",
    "Dwarka Sector 21", "Faridabad Sector 15", "GTB Nagar", "Ghaziabad", "Ghitorni",
    "Ghitorni Village", "Golf Course Road", "Govindpuri", "Greater Kailash", "Greater Noida",
    "Green Park", "Gurgaon Railway Station", "Gurgaon Sector 29", "Gurgaon Sector 56",
    "Gwal Pahari", "Hauz Khas", "Hauz Rani", "Hero Honda Chowk", "Huda City Centre", "IFFCO Chowk",
    "IGI Airport", "IGNOU Road", "IIT Delhi", "IMT Manesar", "INA Market", "ITO", "Inderlok",
    "India Gate", "Indirapuram", "Indraprastha", "Jahangirpuri", "Jama Masjid", "Janakpuri",
    "Jasola", "Jhilmil", "Jor Bagh", "Kadarpur", "Kalkaji", "Kanhaiya Nagar", "Karkarduma",
    "Karol Bagh", "Kashmere Gate", "Kashmere Gate ISBT", "Kaushambi", "Keshav Puram", "Khan Market",
    "Khandsa", "Kherki Daula Toll", "Kirti Nagar", "Lajpat Nagar", "Lal Quila", "Laxmi Nagar",
    "Lok Kalyan Marg", "MG Road", "Madipur", "Maidan Garhi", "Malviya Nagar", "Mandi House",
    "Manesar", "Mansarovar Park", "Mayur Vihar", "Meerut", "Mehrauli", "Model Town", "Moolchand",
    "Moti Nagar", "Mundka", "Munirka", "Narsinghpur", "Nawada", "Nehru Place",
    "Netaji Subhash Place", "New Colony", "New Delhi Railway Station", "Nirman Vihar",
    "Noida Extension", "Noida Film City", "Noida Sector 18", "Noida Sector 62", "Okhla",
    "Old Gurgaon", "Paharganj", "Palam Vihar", "Panchsheel Park", "Panipat", "Paschim Vihar",
    "Pataudi Chowk", "Patel Chowk", "Peeragarhi", "Pitampura", "Pragati Maidan", "Preet Vihar",
    "Pulbangash", "Punjabi Bagh", "Qutub Minar", "RK Puram", "Raj Nagar Extension", "Rajiv Chowk",
    "Rajiv Nagar", "Rajouri Garden", "Ramesh Nagar", "Rithala", "Rohini", "Rohini East",
    "Rohini West", "Sadar Bazar Gurgaon", "Saidulajab", "Saket", "Saket A Block", "Samaypur Badli",
    "Sarai Kale Khan", "Sarojini Nagar", "Satguru Ram Singh Marg", "Seelampur", "Shahdara",
    "Shastri Nagar", "Shastri Park", "Shivaji Park", "Sikanderpur", "Sohna Road", "Sonipat",
    "South Extension", "Subhash Chowk", "Subhash Nagar", "Sultanpur", "Sushant Lok",
    "Tagore Garden", "Tilak Nagar", "Tis Hazari", "Tughlakabad", "Udyog Bhawan", "Udyog Vihar",
    "Udyog Vihar Phase 4", "Uttam Nagar", "Vaishali", "Vasant Kunj", "Vatika Chowk", "Vidhan Sabha",
    "Vinobapuri", "Vishwavidyalaya", "Welcome", "Yamuna Bank",
)
