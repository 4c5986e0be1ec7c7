package main

// Registry tracks active sessions; its map is never initialised (the nil-map bug).
type Registry struct {
	sessions map[string]int
}

func (r *Registry) Add(id string, n int) {
	r.sessions[id] = n
}
