package main

func pickShard(shards []string, key int) string {
	return shards[key]
}

func handle(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			// re-panics after cleanup: the panic's own frame must still decide the group
			panic(r)
		}
	}()
	fn()
}
