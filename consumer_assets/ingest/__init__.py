"""Ingestion of the landing zone: find a complete day, validate its records, split kept from quarantined."""
