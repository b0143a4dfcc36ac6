package testcorpus

// param is one parameter of a generated tool. values holds the pool its
// values are drawn from; a string value "a|b" is one value with two
// acceptable spellings (the first is the one logged).
type param struct {
	name   string
	typ    string // string, integer, number, boolean, array
	items  string // element type of an array
	desc   string
	values []any
	// clause is the part of the user's question that mentions the
	// parameter, with {} where its value goes.
	clause string
	// def is the default an optional parameter's answer also accepts; nil:
	// none.
	def any
}

// tool is a generated function: its possible names (a dotted name is
// logged with underscores, as BFCL's converted logs do), description,
// parameters (the first required of them are required) and the
// question that asks for it.
type tool struct {
	names    []string
	desc     string
	params   []param
	required int
	// ask starts the question.
	ask string
}

var (
	cities    = []any{"Paris", "Tokyo", "Berlin", "New York City|NYC", "San Francisco|SF", "Lisbon", "Nairobi", "Sydney", "Toronto", "Mumbai", "Oslo", "Lima", "Seoul", "Cairo", "Dublin", "Austin"}
	units     = []any{"celsius", "fahrenheit", "kelvin"}
	currency  = []any{"USD", "EUR", "JPY", "GBP", "CHF", "INR", "BRL"}
	languages = []any{"French", "Spanish", "German", "Japanese", "Italian", "Portuguese"}
	dates     = []any{"2024-03-15", "2024-07-01", "2024-11-30", "2025-01-20", "2025-05-05", "2025-09-12"}
	people    = []any{"Ada Lovelace", "Alan Turing", "Grace Hopper", "Marie Curie", "Nikola Tesla", "Rosalind Franklin", "Katherine Johnson"}
	genres    = []any{"jazz", "rock", "classical", "hip hop|hip-hop", "folk", "electronic"}
	teams     = []any{"Lakers", "Celtics", "Real Madrid", "Arsenal", "Yankees", "Dodgers", "Bayern Munich"}
	stocks    = []any{"AAPL", "MSFT", "NVDA", "GOOGL", "AMZN", "TSLA"}
	dishes    = []any{"lasagna", "pad thai", "ramen", "paella", "falafel", "risotto", "tacos"}
	elements  = []any{"carbon", "oxygen", "iron", "gold", "neon", "sodium"}
	smallInts = []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 20}
	years     = []any{1905, 1969, 1989, 1999, 2001, 2010, 2015, 2020}
	amounts   = []any{250, 1000, 1500, 4200, 10000, 25000, 300000}
	rates     = []any{0.5, 1.25, 2.75, 3.5, 4.1, 5.0, 6.25}
	sizes     = []any{2.5, 3, 4.2, 7, 10, 12.5, 15}
	bools     = []any{true, false}
)

// tools is the catalogue the corpus draws from.
var tools = []tool{
	{names: []string{"get_weather_forecast", "weather.forecast", "fetch_forecast"}, desc: "Get the weather forecast for a city.", ask: "What is the weather forecast",
		required: 1, params: []param{
			{name: "city", typ: "string", desc: "The city name.", values: cities, clause: " for {}"},
			{name: "days", typ: "integer", desc: "Number of days ahead.", values: smallInts, clause: " over the next {} days", def: 1},
			{name: "unit", typ: "string", desc: "Temperature unit.", values: units, clause: " in {}", def: "celsius"},
		}},
	{names: []string{"convert_currency", "finance.convert_currency", "currency_exchange.convert"}, desc: "Convert an amount between currencies.", ask: "Convert",
		required: 3, params: []param{
			{name: "amount", typ: "number", desc: "The amount to convert.", values: amounts, clause: " {}"},
			{name: "from_currency", typ: "string", desc: "Currency code to convert from.", values: currency, clause: " {}"},
			{name: "to_currency", typ: "string", desc: "Currency code to convert to.", values: currency, clause: " to {}"},
		}},
	{names: []string{"calculate_triangle_area", "geometry.triangle_area", "triangle_area"}, desc: "Area of a triangle from base and height.", ask: "Find the area of a triangle",
		required: 2, params: []param{
			{name: "base", typ: "integer", desc: "The base.", values: smallInts, clause: " with base {}"},
			{name: "height", typ: "integer", desc: "The height.", values: smallInts, clause: " and height {}"},
			{name: "unit", typ: "string", desc: "Unit of length.", values: []any{"cm", "m", "inches|in"}, clause: " measured in {}", def: "units"},
		}},
	{names: []string{"calculate_circle_area", "geometry.area_circle", "circle.area"}, desc: "Area of a circle.", ask: "What is the area of a circle",
		required: 1, params: []param{
			{name: "radius", typ: "number", desc: "The radius.", values: sizes, clause: " with radius {}"},
			{name: "units", typ: "string", desc: "Unit of the radius.", values: []any{"meters", "feet", "cm"}, clause: " {}"},
		}},
	{names: []string{"math.factorial", "calculate_factorial", "factorial"}, desc: "Factorial of a number.", ask: "Calculate the factorial",
		required: 1, params: []param{
			{name: "number", typ: "integer", desc: "The number.", values: smallInts, clause: " of {}"},
		}},
	{names: []string{"math.hypot", "calculate_hypotenuse", "geometry.hypotenuse"}, desc: "Length of the hypotenuse.", ask: "Compute the hypotenuse",
		required: 2, params: []param{
			{name: "x", typ: "integer", desc: "First side.", values: smallInts, clause: " for sides {}"},
			{name: "y", typ: "integer", desc: "Second side.", values: smallInts, clause: " and {}"},
			{name: "z", typ: "integer", desc: "Optional third side.", values: smallInts, clause: " and third side {}", def: 0},
		}},
	{names: []string{"book_flight", "travel.book_flight", "flights.book"}, desc: "Book a flight.", ask: "Book a flight",
		required: 3, params: []param{
			{name: "origin", typ: "string", desc: "Departure city.", values: cities, clause: " from {}"},
			{name: "destination", typ: "string", desc: "Arrival city.", values: cities, clause: " to {}"},
			{name: "date", typ: "string", desc: "Departure date, YYYY-MM-DD.", values: dates, clause: " on {}"},
			{name: "passengers", typ: "integer", desc: "Number of passengers.", values: smallInts, clause: " for {} passengers", def: 1},
			{name: "round_trip", typ: "boolean", desc: "Whether to book the way back.", values: bools, clause: " (round trip: {})", def: false},
		}},
	{names: []string{"find_restaurants", "restaurants.search", "dining.find"}, desc: "Find restaurants serving a dish.", ask: "Find restaurants",
		required: 2, params: []param{
			{name: "location", typ: "string", desc: "City to search.", values: cities, clause: " in {}"},
			{name: "dish", typ: "string", desc: "Dish to look for.", values: dishes, clause: " that serve {}"},
			{name: "max_results", typ: "integer", desc: "Maximum results.", values: smallInts, clause: ", at most {}", def: 10},
		}},
	{names: []string{"get_stock_price", "stocks.get_price", "market.quote"}, desc: "Latest price of a stock.", ask: "Give me the stock price",
		required: 1, params: []param{
			{name: "ticker", typ: "string", desc: "Ticker symbol.", values: stocks, clause: " of {}"},
			{name: "include_history", typ: "boolean", desc: "Include recent history.", values: bools, clause: " (history: {})", def: false},
		}},
	{names: []string{"calculate_loan_payment", "finance.loan_payment", "mortgage.monthly_payment"}, desc: "Monthly payment of a loan.", ask: "What is the monthly payment",
		required: 3, params: []param{
			{name: "principal", typ: "number", desc: "Loan amount.", values: amounts, clause: " on a loan of {}"},
			{name: "annual_rate", typ: "number", desc: "Annual interest rate in percent.", values: rates, clause: " at {} percent"},
			{name: "years", typ: "integer", desc: "Term in years.", values: smallInts, clause: " over {} years"},
		}},
	{names: []string{"translate_text", "translate.text", "language.translate"}, desc: "Translate text.", ask: "Translate",
		required: 2, params: []param{
			{name: "text", typ: "string", desc: "Text to translate.", values: []any{"good morning", "where is the station", "thank you very much", "see you tomorrow", "how much is this"}, clause: " '{}'"},
			{name: "target_language", typ: "string", desc: "Language to translate into.", values: languages, clause: " into {}"},
			{name: "formal", typ: "boolean", desc: "Use a formal register.", values: bools, clause: " (formal: {})", def: false},
		}},
	{names: []string{"get_biography", "history.biography", "people.lookup"}, desc: "Short biography of a person.", ask: "Tell me about",
		required: 1, params: []param{
			{name: "name", typ: "string", desc: "Full name.", values: people, clause: " {}"},
			{name: "max_words", typ: "integer", desc: "Length limit in words.", values: []any{50, 100, 200, 300}, clause: " in at most {} words"},
		}},
	{names: []string{"recommend_songs", "music.recommend", "playlist.suggest"}, desc: "Recommend songs of a genre.", ask: "Recommend",
		required: 1, params: []param{
			{name: "genre", typ: "string", desc: "Music genre.", values: genres, clause: " {} songs"},
			{name: "count", typ: "integer", desc: "How many songs.", values: smallInts, clause: ", {} of them", def: 5},
			{name: "decade", typ: "integer", desc: "Decade, e.g. 1990.", values: []any{1960, 1970, 1980, 1990, 2000, 2010}, clause: " from the {}s"},
		}},
	{names: []string{"get_team_schedule", "sports.team_schedule", "league.fixtures"}, desc: "Upcoming games of a team.", ask: "Show the schedule",
		required: 1, params: []param{
			{name: "team", typ: "string", desc: "Team name.", values: teams, clause: " of the {}"},
			{name: "games", typ: "integer", desc: "Number of games.", values: smallInts, clause: " for the next {} games", def: 5},
			{name: "home_only", typ: "boolean", desc: "Home games only.", values: bools, clause: " (home only: {})"},
		}},
	{names: []string{"find_recipe", "recipes.search", "cooking.find_recipe"}, desc: "Find a recipe.", ask: "Find a recipe",
		required: 1, params: []param{
			{name: "dish", typ: "string", desc: "Dish name.", values: dishes, clause: " for {}"},
			{name: "servings", typ: "integer", desc: "Number of servings.", values: smallInts, clause: " serving {}"},
			{name: "ingredients_to_avoid", typ: "array", items: "string", desc: "Ingredients to leave out.", values: []any{[]any{"nuts"}, []any{"gluten", "dairy"}, []any{"eggs"}, []any{"shellfish", "soy"}}, clause: " without {}"},
		}},
	{names: []string{"element_properties", "chemistry.element_info", "periodic_table.lookup"}, desc: "Properties of a chemical element.", ask: "Look up",
		required: 1, params: []param{
			{name: "element", typ: "string", desc: "Element name.", values: elements, clause: " {}"},
			{name: "properties", typ: "array", items: "string", desc: "Properties wanted.", values: []any{[]any{"atomic_mass"}, []any{"melting_point", "boiling_point"}, []any{"density"}, []any{"atomic_number", "atomic_mass"}}, clause: " ({})"},
		}},
	{names: []string{"calculate_average", "statistics.mean", "stats.average"}, desc: "Average of numbers.", ask: "Average",
		required: 1, params: []param{
			{name: "numbers", typ: "array", items: "integer", desc: "The numbers.", values: []any{[]any{1, 2, 3}, []any{10, 20, 30, 40}, []any{7, 9}, []any{4, 8, 15, 16, 23, 42}, []any{100, 250}}, clause: " the numbers {}"},
		}},
	{names: []string{"get_event_count", "history.events_in_year", "timeline.events"}, desc: "Notable events of a year.", ask: "List notable events",
		required: 1, params: []param{
			{name: "year", typ: "integer", desc: "The year.", values: years, clause: " of {}"},
			{name: "region", typ: "string", desc: "Region of the world.", values: []any{"Europe", "Asia", "Africa", "Americas"}, clause: " in {}", def: "world"},
			{name: "limit", typ: "integer", desc: "How many.", values: smallInts, clause: ", {} of them"},
		}},
	{names: []string{"schedule_meeting", "calendar.create_event", "meetings.schedule"}, desc: "Schedule a meeting.", ask: "Schedule a meeting",
		required: 2, params: []param{
			{name: "with_person", typ: "string", desc: "Who to meet.", values: people, clause: " with {}"},
			{name: "date", typ: "string", desc: "Date, YYYY-MM-DD.", values: dates, clause: " on {}"},
			{name: "duration_minutes", typ: "integer", desc: "Length in minutes.", values: []any{15, 30, 45, 60, 90}, clause: " for {} minutes", def: 30},
			{name: "remote", typ: "boolean", desc: "Video call.", values: bools, clause: " (remote: {})"},
		}},
	{names: []string{"estimate_property_value", "realestate.estimate", "housing.valuation"}, desc: "Estimate a property's value.", ask: "Estimate the value of",
		required: 2, params: []param{
			{name: "city", typ: "string", desc: "City.", values: cities, clause: " a home in {}"},
			{name: "square_meters", typ: "number", desc: "Floor area.", values: []any{45, 60.5, 80, 120, 150.75, 200}, clause: " of {} square meters"},
			{name: "bedrooms", typ: "integer", desc: "Bedrooms.", values: smallInts, clause: " with {} bedrooms"},
		}},
	{names: []string{"calculate_bmi", "health.bmi", "fitness.body_mass_index"}, desc: "Body mass index.", ask: "Calculate the BMI",
		required: 2, params: []param{
			{name: "weight_kg", typ: "number", desc: "Weight in kg.", values: []any{55, 62.5, 70, 81.2, 95}, clause: " for {} kg"},
			{name: "height_cm", typ: "number", desc: "Height in cm.", values: []any{158, 165.5, 172, 180, 191}, clause: " and {} cm"},
		}},
	{names: []string{"search_movies", "movies.search", "cinema.find_movies"}, desc: "Search movies.", ask: "Search for movies",
		required: 1, params: []param{
			{name: "director", typ: "string", desc: "Director.", values: []any{"Agnes Varda", "Akira Kurosawa", "Greta Gerwig", "Bong Joon-ho", "Wim Wenders"}, clause: " by {}"},
			{name: "year", typ: "integer", desc: "Release year.", values: years, clause: " released in {}"},
			{name: "min_rating", typ: "number", desc: "Minimum rating out of 10.", values: []any{6.5, 7, 7.5, 8, 8.5}, clause: " rated at least {}"},
		}},
	{names: []string{"compute_velocity", "physics.final_velocity", "kinematics.velocity"}, desc: "Final velocity under constant acceleration.", ask: "What is the final velocity",
		required: 2, params: []param{
			{name: "initial_velocity", typ: "number", desc: "Initial velocity in m/s.", values: []any{0, 2.5, 5, 10, 12.5}, clause: " starting at {} m/s"},
			{name: "acceleration", typ: "number", desc: "Acceleration in m/s².", values: []any{1.5, 3, 9.8, 4.25}, clause: " accelerating at {}"},
			{name: "time", typ: "number", desc: "Time in s.", values: sizes, clause: " for {} seconds", def: 1},
		}},
}
