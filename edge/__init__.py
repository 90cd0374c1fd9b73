"""Edge: MQTT gateway, device protocol and sensor simulator."""
