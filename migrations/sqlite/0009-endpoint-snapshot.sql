-- An endpoint runs from its own copy of its config and models (SageMaker's behaviour: deleting the config or
-- a model of a live endpoint does not touch it); an UpdateEndpoint's new copy waits in `pending` while its
-- instances start beside the old ones (blue/green). Both are JSON (core/types.ts Deployment).
-- An invocation keeps the SNS topics of the config it was accepted under, so its failure still reaches the
-- error topic when its endpoint is deleted meanwhile.
ALTER TABLE endpoints ADD COLUMN deployment TEXT;
ALTER TABLE endpoints ADD COLUMN pending TEXT;
ALTER TABLE invocations ADD COLUMN notification TEXT;
-- Endpoints made before: a copy of their config and models as they are now (none when the config is gone).
UPDATE endpoints SET deployment = (
  SELECT json_object(
    'id', 'd-' || endpoints.name || '-' || endpoints.updated_at,
    'config', json(c.body),
    'models', (SELECT json_group_array(json(m.body)) FROM models m
               WHERE m.name IN (SELECT json_extract(v.value, '$.modelName') FROM json_each(c.body, '$.variants') v)),
    'createdAt', endpoints.updated_at)
  FROM endpoint_configs c WHERE c.name = endpoints.config_name);
UPDATE invocations SET notification = (
  SELECT json_extract(c.body, '$.asyncConfig.notification')
  FROM endpoints e JOIN endpoint_configs c ON c.name = e.config_name
  WHERE e.name = invocations.endpoint)
WHERE state IN ('Queued', 'Running');
