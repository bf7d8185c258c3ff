"""Jobs, schedules, sensors, table maintenance and the main-job runner."""
