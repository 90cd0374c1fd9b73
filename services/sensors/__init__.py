"""Field sensors: device protocol rules, readings, quarantine, alarms and summaries."""
