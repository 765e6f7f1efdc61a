"""Settings, the app database, data files and the Rasa process helpers: what every package uses."""
