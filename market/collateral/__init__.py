"""The banks' collateral registry: pledgors, IP assets, pledges, loans, CSV import, monitoring."""
