-- The history of operators' actions goes; the runs stay.
DROP TABLE "FleetRunAction";
