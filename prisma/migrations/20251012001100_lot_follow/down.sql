-- Stops following the application: its writes are no longer logged, and
-- the changes not yet applied to lots are dropped with the log.
DROP TRIGGER "Investment_fleet_lot_update" ON "Investment";
DROP TRIGGER "Investment_fleet_lot_insert" ON "Investment";
DROP FUNCTION "fleet_log_lot_change"();
DROP TABLE "FleetLotChange";
