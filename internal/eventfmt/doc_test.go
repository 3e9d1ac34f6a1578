package eventfmt

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"sshtap"
)

// TestSchemaDocumented checks that cmd/sshtap/EVENTS.md has a section for
// every kind and names every NDJSON field the renderers write.
func TestSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../cmd/sshtap/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(doc)
	var out bytes.Buffer
	w := New(&out, Options{JSON: true, Start: start, Show: sshtap.KindAll})
	var s Summary
	for _, k := range Kinds() {
		ev := samples(t)[k].ev
		s.Add(ev)
		if err := w.Event("c", ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Note("c", "n")
	w.WriteSummary("c", &s, sshtap.Stats{}, time.Second)
	for l := range strings.Lines(out.String()) {
		m := decode(t, l)
		kind := m["kind"].(string)
		if !strings.Contains(md, "### `"+kind+"`") {
			t.Errorf("EVENTS.md has no section for kind %s", kind)
		}
		for f, v := range m {
			if !strings.Contains(md, "`"+f+"`") {
				t.Errorf("EVENTS.md does not document field %s of kind %s", f, kind)
			}
			if f == "extensions" {
				for _, x := range v.([]any) {
					for xf := range x.(map[string]any) {
						if !strings.Contains(md, "`"+xf+"`") {
							t.Errorf("EVENTS.md does not document extension field %s", xf)
						}
					}
				}
			}
		}
	}
}
