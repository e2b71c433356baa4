-- An endpoint runs from its own copy of its config and models (SageMaker's behaviour: deleting the config or
-- a model of a live endpoint does not touch it); an UpdateEndpoint's new copy waits in `pending` while its
-- instances start beside the old ones (blue/green). Both are JSON (core/types.ts Deployment).
-- An invocation keeps the SNS topics of the config it was accepted under, so its failure still reaches the
-- error topic when its endpoint is deleted meanwhile.
ALTER TABLE endpoints ADD COLUMN deployment TEXT;
ALTER TABLE endpoints ADD COLUMN pending TEXT;
ALTER TABLE invocations ADD COLUMN notification TEXT;
-- Endpoints made before: a copy of their config and models as they are now (none when the config is gone).
UPDATE endpoints e SET deployment = json_build_object(
    'id', 'd-' || e.name || '-' || e.updated_at,
    'config', c.body::json,
    'models', (SELECT coalesce(json_agg(m.body::json ORDER BY m.name), '[]'::json) FROM models m
               WHERE m.name IN (SELECT v->>'modelName' FROM json_array_elements(c.body::json->'variants') v)),
    'createdAt', e.updated_at)::text
  FROM endpoint_configs c WHERE c.name = e.config_name;
UPDATE invocations i SET notification = (c.body::json->'asyncConfig'->'notification')::text
  FROM endpoints e JOIN endpoint_configs c ON c.name = e.config_name
  WHERE e.name = i.endpoint AND i.state IN ('Queued', 'Running')
    AND c.body::json->'asyncConfig'->'notification' IS NOT NULL;
