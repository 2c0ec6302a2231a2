-- The key a run's producer seals its jobs with (HMAC of each job's id): a
-- worker runs a job under a run only when the seal shows that run's
-- producer added it. Kept here, never in Redis, where anyone who can write
-- a job could read it. NULL for runs made before it: their jobs carry no
-- seal and are judged as they always were.
ALTER TABLE "FleetRun" ADD COLUMN "jobKey" TEXT;
