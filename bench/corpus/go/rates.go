package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// fetchRates calls the FX provider with a short client timeout; the provider never answers.
func fetchRates(base string) ([]byte, error) {
	client := &http.Client{Timeout: 200 * time.Millisecond}
	resp, err := client.Get(base + "/v1/rates?base=EUR")
	if err != nil {
		return nil, fmt.Errorf("fetch rates: %w", err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// silentListener accepts connections and never writes a byte.
func silentListener() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	return ln
}
