"""Helpers shared by the dashboard pages (a sub-folder, so Streamlit does not list it as a page)."""
