-- The console lists an organization's newest deployments of every stack.
CREATE INDEX deployments_org_created ON deployments (org, created_at);
