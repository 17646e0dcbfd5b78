-- Run once by the postgres image at first start (docker-entrypoint-initdb.d), as the
-- owner: the login role the service runs as. Its privileges are granted by
-- `balance migrate` with BALANCE_APP_ROLE=balance_app, after the tables exist.
CREATE ROLE balance_app LOGIN PASSWORD 'balance_app';
