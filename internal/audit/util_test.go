package audit_test

import "encoding/json"

type json_raw = json.RawMessage

func unmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
