DROP TABLE drift_schedules;
DROP TABLE deployments;
DROP TABLE deployment_settings;
