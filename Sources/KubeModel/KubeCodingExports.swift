// The coding (KubeJSON, JSONValue, unknown fields) is part of the model's API: every user of
// the model types decodes and encodes them with it.
@_exported import KubeCoding
