"""The safegrid application: Flask app factory, API, map pages and the command line."""

from .app import create_app as create_app
