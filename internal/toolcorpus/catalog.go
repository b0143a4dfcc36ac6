package toolcorpus

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// kind is the JSON type of a parameter.
type kind int

const (
	kString kind = iota
	kInteger
	kNumber
	kBoolean
	kEnum
	kArray
	kObject
)

// param is one parameter of a tool: its schema and how a request says it.
type param struct {
	name string
	desc string
	kind kind
	// enum lists the allowed values of a kEnum parameter.
	enum []string
	// gen draws a leaf value (string, int64 or float64) for kString,
	// kInteger, kNumber and the items of kArray.
	gen func(r *rand.Rand) any
	// fields are the properties of a kObject parameter (all required).
	fields []param
	// clauses are phrasings with {} where the value goes; for kBoolean,
	// clauses say true and off say false.
	clauses []string
	off     []string
}

// tool is one generated function.
type tool struct {
	name, desc string
	domain     *domain
	verb       *verb
	params     []param
	required   int // the first required params are required
}

// domain is a thing tools act on.
type domain struct {
	name, plural string // "invoice", "invoices"
	code         string // prefix of its identifiers
	params       []param
}

// verb is an action on a domain.
type verb struct {
	name  string   // "create"
	desc  string   // "Create a new %s."
	asks  []string // openers, %s is the domain name
	needs bool     // whether the identifier comes first and is required
}

// Syllables of made-up words; two to four of them give a pool of about
// three million words, so no generated name repeats often enough to be
// memorised.
var syllables = strings.Fields("ka ro mi tel van su dor pe lin qua zo bri fen ta mos ul nex gar vi sho " +
	"pra lu den fi kor ma tis jo ber ne wa hul cri sa om pel tu rin ax ye")

func word(r *rand.Rand, min, max int) string {
	n := min + r.IntN(max-min+1)
	var sb strings.Builder
	for range n {
		sb.WriteString(syllables[r.IntN(len(syllables))])
	}
	return sb.String()
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func genPerson(r *rand.Rand) any { return title(word(r, 2, 3)) + " " + title(word(r, 2, 3)) }
func genPlace(r *rand.Rand) any  { return title(word(r, 3, 4)) }
func genWord(r *rand.Rand) any   { return word(r, 3, 4) }
func genEmail(r *rand.Rand) any {
	return word(r, 2, 3) + "." + word(r, 2, 3) + "@" + word(r, 2, 3) + ".example"
}
func genDate(r *rand.Rand) any {
	return fmt.Sprintf("%04d-%02d-%02d", 2000+r.IntN(100), 1+r.IntN(12), 1+r.IntN(28))
}
func genPhone(r *rand.Rand) any {
	return fmt.Sprintf("+%d %03d %03d %04d", 1+r.IntN(98), r.IntN(1000), r.IntN(1000), r.IntN(10000))
}
func genTitle(r *rand.Rand) any {
	return title(word(r, 2, 3)) + " " + word(r, 2, 3) + " " + word(r, 1, 3)
}
func genCode(prefix string) func(r *rand.Rand) any {
	return func(r *rand.Rand) any {
		return fmt.Sprintf("%s-%05d-%c%c", prefix, r.IntN(100000), 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26)))
	}
}
func genInt(lo, hi int) func(r *rand.Rand) any {
	return func(r *rand.Rand) any { return int64(lo + r.IntN(hi-lo+1)) }
}
func genMoney(lo, hi int) func(r *rand.Rand) any {
	return func(r *rand.Rand) any { return float64(lo*100+r.IntN((hi-lo)*100)) / 100 }
}

// text is how a leaf value reads in a request: verbatim for strings, the
// JSON spelling for numbers.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func str(name, desc string, gen func(*rand.Rand) any, clauses ...string) param {
	return param{name: name, desc: desc, kind: kString, gen: gen, clauses: clauses}
}
func integer(name, desc string, lo, hi int, clauses ...string) param {
	return param{name: name, desc: desc, kind: kInteger, gen: genInt(lo, hi), clauses: clauses}
}
func number(name, desc string, lo, hi int, clauses ...string) param {
	return param{name: name, desc: desc, kind: kNumber, gen: genMoney(lo, hi), clauses: clauses}
}
func enum(name, desc string, values []string, clauses ...string) param {
	return param{name: name, desc: desc, kind: kEnum, enum: values, clauses: clauses}
}
func boolean(name, desc string, on, off []string) param {
	return param{name: name, desc: desc, kind: kBoolean, clauses: on, off: off}
}
func array(name, desc string, gen func(*rand.Rand) any, clauses ...string) param {
	return param{name: name, desc: desc, kind: kArray, gen: gen, clauses: clauses}
}
func object(name, desc string, fields []param, clauses ...string) param {
	return param{name: name, desc: desc, kind: kObject, fields: fields, clauses: clauses}
}

// Shared parameters, composed into the domains below.
var (
	pNote     = str("note", "A free-text note.", genTitle, "with the note {}", "noting {}", "and add the note {}")
	pOwner    = str("owner", "The person responsible.", genPerson, "owned by {}", "for {}", "assigned to {}")
	pEmail    = str("email", "Contact email address.", genEmail, "using the email {}", "reachable at {}", "with email {}")
	pDate     = str("date", "Date, YYYY-MM-DD.", genDate, "on {}", "dated {}", "for the date {}")
	pDue      = str("due_date", "Due date, YYYY-MM-DD.", genDate, "due {}", "with a due date of {}", "by {}")
	pCity     = str("city", "City name.", genPlace, "in {}", "located in {}", "at {}")
	pPhone    = str("phone", "Phone number.", genPhone, "phone {}", "with phone number {}", "call-back number {}")
	pQuantity = integer("quantity", "How many units.", 1, 5000, "quantity {}", "{} units", "for {} pieces")
	pLimit    = integer("limit", "Maximum number of results.", 1, 500, "at most {} results", "limit {}", "no more than {} of them")
	pCount    = integer("count", "Number of people or items.", 1, 900, "for {} people", "count {}", "with a count of {}")
	pAmount   = number("amount", "Amount in the account currency.", 1, 99999, "for {}", "amounting to {}", "with an amount of {}")
	pPrice    = number("max_price", "Highest acceptable price.", 5, 20000, "under {}", "with a maximum price of {}", "costing no more than {}")
	pWeight   = number("weight_kg", "Weight in kilograms.", 1, 900, "weighing {} kg", "with a weight of {} kg", "at {} kilograms")
	pPriority = enum("priority", "Priority level.", []string{"low", "normal", "high", "urgent"}, "with {} priority", "priority {}", "marked {}")
	pStatus   = enum("status", "Status filter.", []string{"open", "pending", "closed", "archived"}, "with status {}", "that are {}", "in state {}")
	pCurrency = enum("currency", "ISO currency code.", []string{"USD", "EUR", "GBP", "JPY", "CHF", "INR", "BRL"}, "in {}", "paid in {}", "currency {}")
	pUnit     = enum("unit", "Unit system.", []string{"metric", "imperial"}, "in {} units", "using {} units", "unit {}")
	pClass    = enum("cabin", "Travel class.", []string{"economy", "premium", "business", "first"}, "in {} class", "cabin {}", "flying {}")
	pFormat   = enum("format", "Output format.", []string{"pdf", "csv", "json", "xlsx"}, "as {}", "in {} format", "exported to {}")
	pNotify   = boolean("notify", "Whether to send a notification.",
		[]string{"and notify them", "with a notification", "sending a notification"},
		[]string{"without notifying anyone", "with no notification", "silently"})
	pUrgent = boolean("express", "Whether to use the express service.",
		[]string{"by express", "with express service", "as an express order"},
		[]string{"with standard service", "not express", "at the normal pace"})
	pPublic = boolean("public", "Whether it is visible to everyone.",
		[]string{"visible to everyone", "made public", "as a public one"},
		[]string{"kept private", "not public", "as a private one"})
	pTags      = array("tags", "Labels to attach.", genWord, "tagged {}", "with the labels {}", "labelled {}")
	pAttendees = array("attendees", "People to invite.", genPerson, "inviting {}", "with attendees {}", "together with {}")
	pSeats     = array("seats", "Seat numbers.", genInt(1, 480), "in seats {}", "seat numbers {}", "taking seats {}")
	pAddress   = object("address", "A postal address.", []param{
		str("street", "Street and number.", func(r *rand.Rand) any { return fmt.Sprintf("%d %s Street", 1+r.IntN(999), title(word(r, 2, 3))) }),
		str("city", "City name.", genPlace),
		str("postal_code", "Postal code.", func(r *rand.Rand) any { return fmt.Sprintf("%05d", r.IntN(100000)) }),
	}, "to {}", "at the address {}", "shipping to {}")
	pContact = object("contact", "Who to contact.", []param{
		str("name", "Full name.", genPerson),
		str("email", "Email address.", genEmail),
	}, "with contact {}", "where the contact is {}", "reaching {}")
	pWindow = object("window", "A date range.", []param{
		str("from", "First day, YYYY-MM-DD.", genDate),
		str("to", "Last day, YYYY-MM-DD.", genDate),
	}, "between {}", "in the window {}", "covering {}")
)

func id(d string, code string) param {
	return str(d+"_id", "Identifier of the "+strings.ReplaceAll(d, "_", " ")+".", genCode(code),
		"{}", "number {}", "with id {}")
}

var domains = []domain{
	{"invoice", "invoices", "INV", []param{pAmount, pCurrency, pDue, pOwner, pNote, pNotify, pTags}},
	{"shipment", "shipments", "SHP", []param{pAddress, pWeight, pUrgent, pQuantity, pDate, pContact, pNote}},
	{"support_ticket", "support tickets", "TCK", []param{pPriority, pOwner, pEmail, pNote, pTags, pNotify, pStatus}},
	{"flight", "flights", "FLT", []param{pCity, pDate, pClass, pCount, pPrice, pContact, pUrgent, pSeats}},
	{"hotel_room", "hotel rooms", "HTL", []param{pCity, pWindow, pCount, pPrice, pCurrency, pNote, pContact}},
	{"meeting", "meetings", "MTG", []param{pDate, pAttendees, pCity, pNote, pPublic, pNotify, pOwner}},
	{"customer", "customers", "CUS", []param{pContact, pPhone, pAddress, pTags, pStatus, pNote, pPublic}},
	{"order", "orders", "ORD", []param{pQuantity, pAddress, pUrgent, pCurrency, pAmount, pContact, pDue}},
	{"patient_record", "patient records", "PAT", []param{pOwner, pDate, pPhone, pNote, pPriority, pNotify, pWeight}},
	{"library_book", "library books", "BK", []param{pOwner, pDue, pCity, pTags, pStatus, pNote, pLimit}},
	{"expense_report", "expense reports", "EXP", []param{pAmount, pCurrency, pDate, pOwner, pFormat, pTags, pNote}},
	{"warehouse_item", "warehouse items", "WHI", []param{pQuantity, pWeight, pCity, pStatus, pTags, pUnit, pNote}},
	{"car_rental", "car rentals", "CAR", []param{pCity, pWindow, pPrice, pContact, pCurrency, pUrgent, pNote}},
	{"job_posting", "job postings", "JOB", []param{pCity, pOwner, pAmount, pCurrency, pPublic, pTags, pDue}},
	{"restaurant_table", "restaurant tables", "RST", []param{pCity, pDate, pCount, pContact, pNote, pNotify, pPhone}},
	{"bank_transfer", "bank transfers", "TRF", []param{pAmount, pCurrency, pContact, pDate, pNote, pUrgent, pNotify}},
	{"sensor", "sensors", "SNS", []param{pCity, pUnit, pLimit, pStatus, pWindow, pFormat, pTags}},
	{"course", "courses", "CRS", []param{pOwner, pWindow, pCount, pPublic, pPrice, pTags, pNote}},
	{"insurance_claim", "insurance claims", "CLM", []param{pAmount, pCurrency, pDate, pContact, pPriority, pNote, pStatus}},
	{"vehicle", "vehicles", "VEH", []param{pOwner, pCity, pWeight, pStatus, pPhone, pNote, pTags}},
	{"event_ticket", "event tickets", "EVT", []param{pCity, pDate, pCount, pPrice, pEmail, pClass, pNotify, pSeats}},
	{"subscription", "subscriptions", "SUB", []param{pEmail, pAmount, pCurrency, pDue, pStatus, pNotify, pFormat}},
	{"lab_sample", "lab samples", "LAB", []param{pOwner, pDate, pWeight, pPriority, pUnit, pNote, pTags}},
	{"parking_permit", "parking permits", "PRK", []param{pOwner, pCity, pWindow, pPhone, pAmount, pCurrency, pStatus}},
	{"recipe", "recipes", "RCP", []param{pCount, pUnit, pTags, pOwner, pPublic, pNote, pLimit}},
	{"repository", "repositories", "REP", []param{pOwner, pPublic, pTags, pEmail, pNote, pStatus, pLimit}},
	{"volunteer_shift", "volunteer shifts", "VOL", []param{pDate, pCity, pCount, pContact, pNote, pNotify, pAttendees}},
	{"podcast_episode", "podcast episodes", "POD", []param{pDate, pOwner, pAttendees, pPublic, pTags, pFormat, pNote}},
	{"tax_filing", "tax filings", "TAX", []param{pAmount, pCurrency, pDue, pOwner, pFormat, pNote, pAddress}},
	{"greenhouse_plot", "greenhouse plots", "GRN", []param{pCity, pWeight, pUnit, pOwner, pDate, pTags, pNote}},
}

var verbs = []verb{
	{"create", "Create a new %s.", []string{"Please create a new %s", "Could you create a %s", "I need a new %s", "Make a %s", "Set up a %s"}, false},
	{"get", "Fetch one %s by its identifier.", []string{"Show me %s", "Can you look up %s", "Fetch %s", "I'd like the details of %s", "Pull up %s"}, true},
	{"update", "Change fields of an existing %s.", []string{"Update %s", "Please change %s", "Modify %s", "Could you edit %s", "Amend %s"}, true},
	{"cancel", "Cancel an existing %s.", []string{"Cancel %s", "Please call off %s", "I want to cancel %s", "Could you cancel %s", "Scrap %s"}, true},
	{"search", "Search %ss by fields.", []string{"Find %ss", "Search for %ss", "Look for any %ss", "Which %ss are there", "List the %ss"}, false},
	{"archive", "Archive an existing %s.", []string{"Archive %s", "Please file away %s", "Move %s to the archive", "Could you archive %s", "Put %s in the archive"}, true},
	{"export", "Export %ss to a file.", []string{"Export the %ss", "Download the %ss", "Give me a file of the %ss", "Dump the %ss", "Prepare an export of the %ss"}, false},
	{"assign", "Assign an existing %s to someone.", []string{"Assign %s", "Hand %s over", "Reassign %s", "Please give %s", "Transfer %s"}, true},
	{"schedule", "Schedule a %s for later.", []string{"Schedule a %s", "Plan a %s", "Book a %s", "Put a %s on the calendar", "Arrange a %s"}, false},
	{"duplicate", "Copy an existing %s.", []string{"Duplicate %s", "Make a copy of %s", "Clone %s", "Copy %s", "Create a duplicate of %s"}, true},
	{"validate", "Check an existing %s for problems.", []string{"Validate %s", "Check %s", "Verify %s", "Run checks on %s", "Audit %s"}, true},
	{"summarize", "Summarize %ss matching the fields.", []string{"Summarize the %ss", "Give me a summary of %ss", "Report on the %ss", "Overview of %ss", "Tally the %ss"}, false},
}

// catalog builds the tools: every domain crossed with every verb, each with
// its own subset of the domain's parameters, drawn from a fixed seed so the
// catalogue is the same whatever seed the records use.
func catalog() []tool {
	r := rand.New(rand.NewPCG(11, 0x70015))
	var out []tool
	for di := range domains {
		d := &domains[di]
		spoken := strings.ReplaceAll(d.name, "_", " ")
		for vi := range verbs {
			v := &verbs[vi]
			t := tool{name: v.name + "_" + d.name, desc: fmt.Sprintf(v.desc, spoken), domain: d, verb: v}
			if v.needs {
				t.params = append(t.params, id(d.name, d.code))
				t.required = 1
			}
			k := 1 + r.IntN(4)
			for _, i := range r.Perm(len(d.params))[:k] {
				t.params = append(t.params, d.params[i])
			}
			if !v.needs {
				t.required = 1 + r.IntN(len(t.params))
			} else {
				t.required += r.IntN(len(t.params))
			}
			out = append(out, t)
		}
	}
	return out
}
