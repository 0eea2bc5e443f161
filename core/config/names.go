package config

// ValidAppName reports whether s can name an app: the rule an app block's
// label is held to, for apps the mesh creates at runtime (a site's app).
func ValidAppName(s string) bool { return validName(s) }
