package synthetic

import (
	"fmt"
	"strings"
	"unicode"
)

// CheckValue refuses a registration value that would change a synthetic query: the
// language is whitespace-separated key=value words, so a space would add a word (and
// with it a key such as seed= or streams=), and `=` or a quote is refused by ParseQuery.
func (p *Provider) CheckValue(v string) error {
	if i := strings.IndexFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("=\"'`", r)
	}); i >= 0 {
		return fmt.Errorf("%q cannot be in a synthetic query value (no space, '=' or quote)", []rune(v[i:])[0])
	}
	return nil
}
