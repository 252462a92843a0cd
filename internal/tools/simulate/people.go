package simulate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// person is one simulated inhabitant. The same person (same national ID)
// appears as a contact and later as a case, as in real registers.
//
// Persons carry valid national identifiers — a 12-digit IIN with its check
// digit in Kazakhstan, a 14-digit PIN in Kyrgyzstan — consistent with their
// birth date and sex, unique within the run, and often name, phone and address
// as real producers send them (ingest removes those).
type person struct {
	id       string // IIN (KZ) or PIN (KG)
	birth    time.Time
	sex      string // schemas sex: "male" or "female"
	district string
	name     string
	phone    string
	address  string
}

// people issues persons with national identifiers that are valid and unique
// across the run.
type people struct {
	used map[string]struct{}
}

func newPeople() *people { return &people{used: make(map[string]struct{})} }

// Age groups of cases: shares loosely following the age distribution of
// reported COVID-19 cases in Kazakhstan in 2020–21 (few children, most cases
// of working age).
var (
	caseAgeLo    = []int{0, 10, 20, 30, 40, 50, 60, 70, 80}
	caseAgeShare = []float64{0.06, 0.08, 0.15, 0.20, 0.18, 0.15, 0.11, 0.05, 0.02}
	adultAgeLo   = []int{18, 20, 30, 40, 50, 60, 70, 80}
	adultShare   = []float64{0.03, 0.18, 0.20, 0.18, 0.16, 0.14, 0.08, 0.03}
)

// newPerson draws a person of the region living on day (ages as of that day).
func (pp *people) newPerson(r *rand.Rand, reg *regionState, day schemas.Date, adult bool) *person {
	lo, share := caseAgeLo, caseAgeShare
	if adult {
		lo, share = adultAgeLo, adultShare
	}
	g := pick(r, share)
	width := 10
	switch {
	case g == len(lo)-1:
		width = 16 // 80–95
	case adult && g == 0:
		width = 2
	}
	age := lo[g] + r.IntN(width)
	// Born at least three days before day: events about the person may be
	// dated up to two days earlier (a contact before the index's onset).
	birth := day.Time().AddDate(-age, 0, -r.IntN(365)-3)
	sex := "male"
	if r.Float64() < 0.52 {
		sex = "female"
	}
	p := &person{sex: sex, district: reg.districts[r.IntN(len(reg.districts))]}
	p.id, p.birth = pp.issue(r, reg.reg.Country, birth, sex)
	names := namesKZ
	if reg.reg.Country == "KG" {
		names = namesKG
	}
	first := names.male
	if sex == "female" {
		first = names.female
	}
	p.name = surname(names.surnames[r.IntN(len(names.surnames))], sex) + " " + first[r.IntN(len(first))]
	p.phone = phone(r, reg.reg.Country)
	p.address = fmt.Sprintf("%s, ул. %s, д. %d, кв. %d", reg.place, streets[r.IntN(len(streets))], 1+r.IntN(150), 1+r.IntN(120))
	return p
}

// issue returns a national ID for the birth date and sex not issued before in
// this run: a random serial, probed upwards on a collision. In the
// practically impossible case that every serial of the birthday is taken, the
// birthday moves a day earlier; the birth date used is returned with the ID.
func (pp *people) issue(r *rand.Rand, country string, birth time.Time, sex string) (string, time.Time) {
	s := nationalid.Male
	if sex == "female" {
		s = nationalid.Female
	}
	serial := r.IntN(100000)
	for k := 0; ; k++ {
		if k > 0 && k%10000 == 0 { // every serial of this birthday is taken
			birth = birth.AddDate(0, 0, -1)
		}
		var id string
		if country == "KG" {
			id = nationalid.GeneratePIN(birth, s, serial+k)
		} else {
			id = nationalid.GenerateIIN(birth, s, serial+k)
		}
		if _, dup := pp.used[id]; !dup {
			pp.used[id] = struct{}{}
			return id, birth
		}
	}
}

// Which optional fields a producer fills: laboratory and hospital systems
// send most of them; ingest drops name, phone and address and keeps the age
// band, sex and district.
type fieldShares struct{ birth, sex, district, name, phone, address float64 }

var (
	caseFields    = fieldShares{birth: 0.9, sex: 0.95, district: 0.85, name: 0.7, phone: 0.5, address: 0.4}
	contactFields = fieldShares{birth: 0.7, sex: 0.9, district: 0.6, name: 0.6, phone: 0.6, address: 0.2}
	labFields     = fieldShares{birth: 0.95, sex: 0.95, district: 0.3, name: 0.5, phone: 0.2}
	vaxFields     = fieldShares{birth: 1, sex: 1, district: 0.9}
	indexFields   = fieldShares{}
)

// schema returns the person as a producer would send it, with the optional
// fields drawn by f.
func (p *person) schema(r *rand.Rand, f fieldShares) *schemas.Person {
	sp := &schemas.Person{NationalID: p.id}
	if r.Float64() < f.birth {
		sp.BirthDate = p.birth.Format(schemas.DateLayout)
	}
	if r.Float64() < f.sex {
		sp.Sex = p.sex
	}
	if r.Float64() < f.district {
		sp.District = p.district
	}
	if r.Float64() < f.name {
		sp.Name = p.name
	}
	if r.Float64() < f.phone {
		sp.Phone = p.phone
	}
	if r.Float64() < f.address {
		sp.Address = p.address
	}
	return sp
}

type nameList struct{ male, female, surnames []string }

var namesKZ = nameList{
	male:     []string{"Ерлан", "Айдар", "Нурлан", "Асхат", "Даурен", "Бауыржан", "Арман", "Тимур", "Сергей", "Александр", "Дмитрий", "Азамат", "Данияр", "Ержан", "Мурат", "Алихан", "Руслан", "Санжар"},
	female:   []string{"Айгуль", "Динара", "Жанар", "Гульнара", "Асель", "Айжан", "Мадина", "Сауле", "Елена", "Ольга", "Наталья", "Алия", "Камила", "Назира", "Толкын", "Аружан", "Дана", "Ирина"},
	surnames: []string{"Ахметов", "Нурланов", "Жумабаев", "Касымов", "Искаков", "Иванов", "Ким", "Омаров", "Абдрахманов", "Садыков", "Мухамедов", "Токтаров", "Бекмуратов", "Серикбаев", "Смагулов", "Кузнецов", "Тулегенов", "Байжанов"},
}

var namesKG = nameList{
	male:     []string{"Бакыт", "Азамат", "Нурбек", "Эрлан", "Чынгыз", "Айбек", "Талант", "Улан", "Медер", "Руслан", "Алмаз", "Бекжан"},
	female:   []string{"Айпери", "Жылдыз", "Нургуль", "Айзада", "Бермет", "Гулзат", "Чолпон", "Айгерим", "Нурзат", "Элнура", "Мээрим", "Асель"},
	surnames: []string{"Асанов", "Токтогулов", "Садыров", "Жээнбеков", "Мамытов", "Абдыкадыров", "Осмонов", "Сатыбалдиев", "Исаков", "Токтосунов", "Бакиров", "Иманалиев"},
}

var streets = []string{"Абая", "Толе би", "Сатпаева", "Гагарина", "Жибек Жолы", "Абылай хана", "Байтурсынова", "Мира", "Достык", "Ленина", "Пушкина", "Жамбыла", "Сейфуллина", "Манаса", "Чуй", "Советская"}

// surname gives the female form of Russian-style surnames (-ов/-ев/-ин + а).
func surname(s, sex string) string {
	if sex == "female" && (strings.HasSuffix(s, "ов") || strings.HasSuffix(s, "ев") || strings.HasSuffix(s, "ин")) {
		return s + "а"
	}
	return s
}

// phone returns a mobile number in the national format.
func phone(r *rand.Rand, country string) string {
	if country == "KG" {
		pre := []string{"500", "550", "555", "700", "707", "770", "777", "990"}
		return fmt.Sprintf("+996 %s %03d %03d", pre[r.IntN(len(pre))], r.IntN(1000), r.IntN(1000))
	}
	pre := []string{"700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"}
	return fmt.Sprintf("+7 %s %03d %02d %02d", pre[r.IntN(len(pre))], r.IntN(1000), r.IntN(100), r.IntN(100))
}

// Districts of the cities of republican significance; oblasts get generic
// district names.
var cityDistricts = map[string][]string{
	"KZ-75": {"Алатауский район", "Алмалинский район", "Ауэзовский район", "Бостандыкский район", "Жетысуский район", "Медеуский район", "Наурызбайский район", "Турксибский район"},
	"KZ-71": {"район Алматы", "район Байконур", "район Есиль", "район Сарыарка", "район Нура"},
	"KZ-79": {"Абайский район", "Аль-Фарабийский район", "Енбекшинский район", "Каратауский район", "район Туран"},
	"KG-GB": {"Ленинский район", "Октябрьский район", "Первомайский район", "Свердловский район"},
}

var genericDistricts = []string{"Центральный район", "Северный район", "Южный район", "Восточный район", "Западный район", "Приозёрный район", "Степной район", "Горный район", "Районный центр"}

func districtsOf(reg schemas.Region, n int) []string {
	if d, ok := cityDistricts[reg.Code]; ok {
		return d
	}
	n = max(3, min(n, len(genericDistricts)))
	return genericDistricts[:n]
}
