-- The Rasa tracker store and (with the SQL broker) the event table get their own databases;
-- the app database `kefu` is POSTGRES_DB. Run once, when the postgres volume is new.
CREATE DATABASE kefu_tracker OWNER kefu;
CREATE DATABASE kefu_events OWNER kefu;
