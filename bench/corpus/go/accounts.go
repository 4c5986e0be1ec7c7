package main

import "fmt"

type Account struct {
	ID      int
	Balance *Money
}

type Money struct {
	Cents int64
}

func findAccount(id int) *Account {
	if id%2 == 0 {
		return &Account{ID: id}
	}
	return &Account{ID: id, Balance: &Money{Cents: 100}}
}

func balanceOf(id int) string {
	acct := findAccount(id)
	return fmt.Sprintf("%d: %d", acct.ID, acct.Balance.Cents)
}
