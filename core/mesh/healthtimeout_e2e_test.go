package mesh_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/rollout"
)

// TestHealthTimeoutFromConfig: health.timeout in mesh.hcl is what bounds
// each health check, through the health plugin. A version whose /health
// takes 1.5s to answer fails its gate when checks may take 400ms, and passes
// it when they may take 5s (the built-in 1s would fail it).
func TestHealthTimeoutFromConfig(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		want    rollout.State
	}{
		{"400ms", rollout.Reverted},
		{"5s", rollout.Succeeded},
	} {
		t.Run(tc.timeout, func(t *testing.T) {
			e := newEnv(t)
			e.maxInst = 1
			e.extraApp = "health {\n  timeout = \"" + tc.timeout + "\"\n}\n"
			e.writeConfig()
			e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 1\n  health_timeout = \"8s\"\n")
			e.start()
			slow := e.helloSpore("slow", "3.0.0-slow", `"HELLO_VERSION":"slow","HELLO_HEALTH_DELAY":"1500ms"`)
			r := e.waitRollout(e.deployDetached(slow), 60*time.Second)
			if r.State != tc.want {
				t.Fatalf("health.timeout %s: rollout %s (%s), want %s", tc.timeout, r.State, r.Detail, tc.want)
			}
			if tc.want == rollout.Reverted && !strings.Contains(r.Detail, "not healthy within 8s") {
				t.Fatalf("detail: %s", r.Detail)
			}
		})
	}
}
