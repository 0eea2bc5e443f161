// Command siteserve is the static file server of sites hosted as mesh apps
// (the mesh-app hosting backend). Its executable carries the site: a
// snapshot appended to it (sitesnap.WriteBundle), so the spore that ships
// it is signed as one binary. At start it extracts the site into ./site (the
// instance directory is its working directory) and serves it on $PORT:
// index documents, the site's 404.html for missing files, Last-Modified
// and conditional requests, ranges and content types (http.FileServer), and
// /health for the mesh's health checks.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/mycelium-mesh/mesh/core/sitesnap"
)

func main() {
	dir, err := extract()
	if err != nil {
		log.Fatalf("siteserve: %v", err)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("siteserve: serving %s on 127.0.0.1:%s", dir, port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, handler(dir)))
}

// extract unpacks the bundled site into ./site, replacing an earlier copy.
func extract() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	archive, err := sitesnap.OpenBundle(f)
	if err != nil {
		return "", err
	}
	dir, err := filepath.Abs("site")
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if _, err := sitesnap.Extract(archive, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func handler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	notFound := filepath.Join(dir, "404.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "a static site answers GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			if b, err := os.ReadFile(notFound); err == nil {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				if r.Method != http.MethodHead {
					_, _ = w.Write(b)
				}
				return
			}
		}
		if strings.HasSuffix(p, "/index.html") {
			// FileServer redirects /index.html to ./; serve the directory.
			r.URL.Path = strings.TrimSuffix(p, "index.html")
		}
		files.ServeHTTP(w, r)
	})
}
