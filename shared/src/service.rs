//! service-run: create or update the service, run one-off tasks, watch until stable or failed.
//! (Filled in by the service-run issue.)
