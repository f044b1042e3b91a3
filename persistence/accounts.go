package persistence

import (
	"sort"
	"strconv"

	"github.com/quirehq/quire/messages"
)

// AccountRef loads an account named by its id or by its number (a ref made
// only of decimal digits), or ErrNotFound.
func (s *Store) AccountRef(ref string) (*messages.Account, error) {
	num, ok := accountNumber(ref)
	if !ok {
		return s.Account(ref)
	}
	accts, err := s.Accounts()
	if err != nil {
		return nil, err
	}
	for _, a := range accts {
		if a.GetNumber() == num {
			return a, nil
		}
	}
	return nil, ErrNotFound
}

// AccountsByNumber lists at most limit accounts whose number is above
// after, ordered by number; more reports whether others follow.
func (s *Store) AccountsByNumber(after int64, limit int) (page []*messages.Account, more bool, err error) {
	accts, err := s.Accounts()
	if err != nil {
		return nil, false, err
	}
	sort.Slice(accts, func(i, j int) bool { return accts[i].GetNumber() < accts[j].GetNumber() })
	for _, a := range accts {
		if a.GetNumber() <= after {
			continue
		}
		if len(page) == limit {
			return page, true, nil
		}
		page = append(page, a)
	}
	return page, false, nil
}

// accountNumber reads ref as an account number when it is one.
func accountNumber(ref string) (int64, bool) {
	if ref == "" || len(ref) > 18 {
		return 0, false
	}
	for _, c := range ref {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(ref, 10, 64)
	return n, err == nil
}
