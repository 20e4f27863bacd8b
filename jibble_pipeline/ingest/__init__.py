"""Loading from Jibble into the warehouse: what is fetched, validated and landed, and how."""
