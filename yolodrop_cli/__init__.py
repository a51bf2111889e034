"""yolodrop's command line: a thin client of the HTTP API and of the upload URLs it hands out."""
