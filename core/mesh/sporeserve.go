package mesh

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/mycelium-mesh/mesh/core/repo"
)

// sporeRoutes serves the mesh's local repo on the control API, content
// addressed, for agents on other hosts (the bundled "http" repo backend):
//
//	GET  /v1/spores/{digest}   the spore's bytes, streamed
//	HEAD /v1/spores/{digest}   200 when the repo holds it, else 404
//
// Only the local store is served, never a fetch through this mesh's own
// backend. The routes sit behind the control API's guards (a private unix
// socket, or the bearer token on TCP). A client must not trust the bytes:
// it checks their digest and the spore's signature itself.
func (m *Mesh) sporeRoutes(mux *http.ServeMux) {
	// A GET pattern matches HEAD too; ServeContent answers HEAD without a body.
	mux.HandleFunc("GET /v1/spores/{digest}", func(w http.ResponseWriter, r *http.Request) {
		d := r.PathValue("digest")
		if _, err := repo.ParseDigest(d); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
			return
		}
		has, err := m.repo.Has(d)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		if !has {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("spore %s not in this mesh's repo", d)})
			return
		}
		p, err := m.repo.Path(d)
		var f *os.File
		if err == nil {
			f, err = os.Open(p)
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, repo.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("spore %s not in this mesh's repo", d)})
			return
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: fmt.Sprintf("open spore %s: %v", d, err)})
			return
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: fmt.Sprintf("stat spore %s: %v", d, err)})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+d+`"`)
		http.ServeContent(w, r, "", info.ModTime(), f)
	})
}
