"""What people see: plotly figures and the offline HTML report, built from the typed
records of the packages below. May import: every package below it (base .. serving).
"""
