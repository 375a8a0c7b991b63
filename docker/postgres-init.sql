-- Airflow's metadata database beside MLflow's (created by POSTGRES_DB).
CREATE DATABASE airflow OWNER socialsuggest;
