package mesh

import (
	"fmt"
	"io"
	"strings"
)

// WriteReloadPlan prints a reload plan for an operator, one block per app:
//
//	~ app "billing" (update)
//	    digest       sha256:3b1f0c9e2a47 kept deployed digest: the file's spore/digest is unchanged (the file names sha256:9ad0e1f25c36)
//	    max          3 -> 2
//
// then trusted-key changes, the changes that need a restart, and a summary.
// Digests are shortened to 12 hex digits; the JSON form carries them whole.
func WriteReloadPlan(w io.Writer, rp ReloadPlan) error {
	var b strings.Builder
	verb := "Reload plan"
	if rp.Applied {
		verb = "Applied reload plan"
	}
	fmt.Fprintf(&b, "%s %s:\n", verb, rp.ID)
	counts := map[string]int{}
	for _, ap := range rp.Apps {
		counts[ap.Action]++
		writeAppPlan(&b, ap)
	}
	if len(rp.Apps) == 0 {
		b.WriteString("  no apps configured\n")
	}
	for _, k := range rp.TrustedKeys.Added {
		fmt.Fprintf(&b, "  + trusted key %s\n", k)
	}
	for _, k := range rp.TrustedKeys.Removed {
		fmt.Fprintf(&b, "  - trusted key %s\n", k)
	}
	for _, n := range rp.Restart {
		fmt.Fprintf(&b, "  ! restart needed: %s\n", n)
	}
	fmt.Fprintf(&b, "%d to add, %d to update, %d to remove, %d unchanged; %d trusted key(s) added, %d removed; %d change(s) need a restart.\n",
		counts[ActionAdd], counts[ActionUpdate], counts[ActionRemove], counts[ActionNone],
		len(rp.TrustedKeys.Added), len(rp.TrustedKeys.Removed), len(rp.Restart))
	if n := counts[ActionSite]; n > 0 {
		fmt.Fprintf(&b, "%d site-owned app(s) kept as they run.\n", n)
	}
	if !rp.Applied {
		fmt.Fprintf(&b, "To apply exactly this plan: mesh reload -expect %s\n", rp.ID)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAppPlan(b *strings.Builder, ap AppPlan) {
	mark := map[string]string{ActionAdd: "+", ActionUpdate: "~", ActionRemove: "-", ActionNone: " ", ActionSite: "="}[ap.Action]
	action := ap.Action
	if ap.Action == ActionSite {
		action = "owned by site " + ap.Site
	}
	fmt.Fprintf(b, "  %s app %q (%s)\n", mark, ap.App, action)
	switch {
	case ap.Action == ActionSite:
		fmt.Fprintf(b, "      %-12s %s %s\n", "digest", shortDigest(ap.Digest), ap.DigestReason)
	case ap.Action == ActionRemove:
		fmt.Fprintf(b, "      %-12s %s withdrawn: %s\n", "digest", shortDigest(ap.Previous), ap.DigestReason)
	case ap.DigestChanged && ap.Previous != "":
		fmt.Fprintf(b, "      %-12s %s -> %s %s\n", "digest", shortDigest(ap.Previous), shortDigest(ap.Digest), ap.DigestReason)
	case ap.Digest != ap.FileDigest:
		fmt.Fprintf(b, "      %-12s %s %s (the file names %s)\n", "digest", shortDigest(ap.Digest), ap.DigestReason, shortDigest(ap.FileDigest))
	default:
		fmt.Fprintf(b, "      %-12s %s %s\n", "digest", shortDigest(ap.Digest), ap.DigestReason)
	}
	for _, c := range ap.Changes {
		if c.From == "" {
			fmt.Fprintf(b, "      %-12s %s\n", c.Field, c.To)
			continue
		}
		fmt.Fprintf(b, "      %-12s %s -> %s\n", c.Field, c.From, c.To)
	}
}

// shortDigest shortens "sha256:<64 hex>" to "sha256:<12 hex>".
func shortDigest(d string) string {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) <= 12 {
		return d
	}
	return "sha256:" + hex[:12]
}
