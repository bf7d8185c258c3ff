"""Jobs, schedules, sensors, automation conditions, table maintenance and the main-job runner."""
