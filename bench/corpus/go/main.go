// Command ledger runs one bug: ledger CASE VALUE; the Go runtime prints the panic to stderr.
package main

import (
	"log"
	"os"
	"strconv"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	switch os.Args[1] {
	case "nil_map":
		r := &Registry{}
		r.Add("sess-"+os.Args[2], n)
	case "nil_pointer":
		// a worker goroutine panics while main waits: with GOTRACEBACK=all the dump shows both
		done := make(chan string)
		go func() { done <- balanceOf(n * 2) }()
		<-done
	case "deadline":
		ln := silentListener()
		if _, err := fetchRates("http://" + ln.Addr().String()); err != nil {
			log.Fatalf("rates job %d: %v", n, err)
		}
	case "index_repanic":
		handle(func() { pickShard([]string{"a", "b", "c"}, n%7+3) })
	}
}
