DROP INDEX deployments_org_created;
