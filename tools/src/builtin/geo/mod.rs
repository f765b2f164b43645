//! `geo.city`, `geo.airports`, `geo.distance`: offline facts for trip planning.

mod data;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use data::{Airport, City, GeoData, fold, haversine_km};

use crate::{Tool, ToolContext, ToolError};

/// `geo.city`: look a city up by name.
pub struct CityLookup;

/// Arguments of `geo.city`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CityArgs {
    /// City name in any common spelling, e.g. `Lisbon`, `Lisboa`, `New York`.
    pub name: String,
    /// Country as an ISO code (`PT`) or name (`Portugal`) to tell same-named cities apart.
    #[serde(default)]
    pub country: Option<String>,
    /// How many matches at most (most populous first).
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 20))]
    pub limit: usize,
}

fn three() -> usize {
    3
}

#[async_trait]
impl Tool for CityLookup {
    type Args = CityArgs;
    type Output = Vec<City>;

    fn name(&self) -> &str {
        "geo.city"
    }
    fn description(&self) -> String {
        "Find a city by name: country, coordinates, time zone and population (offline GeoNames data).".into()
    }
    async fn call(&self, a: CityArgs, cx: &ToolContext) -> Result<Vec<City>, ToolError> {
        let geo = data::get(&cx.data_dir)
            .await
            .map_err(|e| ToolError::failed("geo.city", e))?;
        let found: Vec<City> = geo
            .find_cities(&a.name, a.country.as_deref())
            .into_iter()
            .take(a.limit)
            .cloned()
            .collect();
        if found.is_empty() {
            return Err(not_found(&geo, "geo.city", &a.name));
        }
        Ok(found)
    }
}

fn not_found(geo: &GeoData, tool: &str, name: &str) -> ToolError {
    let hint = geo
        .suggest_city(name)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    ToolError::InvalidArguments {
        tool: tool.into(),
        field: "name".into(),
        message: format!("no city called `{name}` with 15,000+ people{hint}"),
    }
}

/// `geo.airports`: airports by code or near a city.
pub struct Airports;

/// Arguments of `geo.airports`: give `code` or `near`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AirportsArgs {
    /// IATA (`LIS`) or ICAO (`LPPT`) code of one airport.
    #[serde(default)]
    pub code: Option<String>,
    /// A city name: the airports with scheduled service nearest to it.
    #[serde(default)]
    pub near: Option<String>,
    /// Largest distance from the city, in km (default 100).
    #[serde(default)]
    pub within_km: Option<f64>,
    /// How many airports at most (default 3).
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 20))]
    pub limit: usize,
}

/// An airport with its distance from the place asked about.
#[derive(Debug, Serialize)]
pub struct AirportHit {
    #[serde(flatten)]
    pub airport: Airport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

#[async_trait]
impl Tool for Airports {
    type Args = AirportsArgs;
    type Output = Vec<AirportHit>;

    fn name(&self) -> &str {
        "geo.airports"
    }
    fn description(&self) -> String {
        "Airports by IATA/ICAO code, or the airports nearest a city (offline airportsdata).".into()
    }
    async fn call(&self, a: AirportsArgs, cx: &ToolContext) -> Result<Vec<AirportHit>, ToolError> {
        let geo = data::get(&cx.data_dir)
            .await
            .map_err(|e| ToolError::failed("geo.airports", e))?;
        match (&a.code, &a.near) {
            (Some(code), None) => match geo.by_code.get(&code.trim().to_uppercase()) {
                Some(&i) => Ok(vec![AirportHit {
                    airport: geo.airports[i].clone(),
                    distance_km: None,
                }]),
                None => Err(ToolError::InvalidArguments {
                    tool: "geo.airports".into(),
                    field: "code".into(),
                    message: format!("no airport with code `{code}`"),
                }),
            },
            (None, Some(city)) => {
                let c = *geo
                    .find_cities(city, None)
                    .first()
                    .ok_or_else(|| not_found(&geo, "geo.airports", city))?;
                Ok(geo
                    .airports_near(c.lat, c.lon, a.within_km.unwrap_or(100.0), a.limit)
                    .into_iter()
                    .map(|(ap, d)| AirportHit {
                        airport: ap.clone(),
                        distance_km: Some((d * 10.0).round() / 10.0),
                    })
                    .collect())
            }
            _ => Err(ToolError::InvalidArguments {
                tool: "geo.airports".into(),
                field: "code".into(),
                message: "give exactly one of `code` or `near`".into(),
            }),
        }
    }
}

/// `geo.distance`: great-circle distance between two places.
pub struct Distance;

/// Arguments of `geo.distance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistanceArgs {
    /// Start: a city name (`Lisbon`, `Paris, France`) or an airport code (`LIS`).
    pub from: String,
    /// End: a city name or an airport code.
    pub to: String,
}

/// Output of `geo.distance`.
#[derive(Debug, Serialize)]
pub struct DistanceOut {
    pub from: String,
    pub to: String,
    pub km: f64,
    pub miles: f64,
    /// Rough non-stop flight time: 850 km/h cruise plus 30 minutes.
    pub flight_hours: f64,
    /// Hours to add to the clock when going from `from` to `to` (right now).
    pub time_difference_hours: f64,
}

struct Place {
    label: String,
    lat: f64,
    lon: f64,
    tz: String,
}

fn resolve(geo: &GeoData, q: &str, field: &str) -> Result<Place, ToolError> {
    let t = q.trim();
    if (t.len() == 3 || t.len() == 4)
        && t.chars().all(|c| c.is_ascii_uppercase())
        && let Some(&i) = geo.by_code.get(t)
    {
        let a = &geo.airports[i];
        return Ok(Place {
            label: format!("{} ({})", a.name, t),
            lat: a.lat,
            lon: a.lon,
            tz: a.timezone.clone(),
        });
    }
    let (name, country) = match t.split_once(',') {
        Some((n, c)) => (n.trim(), Some(c.trim())),
        None => (t, None),
    };
    match geo.find_cities(name, country).first() {
        Some(c) => Ok(Place {
            label: format!("{}, {}", c.name, c.country),
            lat: c.lat,
            lon: c.lon,
            tz: c.timezone.clone(),
        }),
        None => {
            let mut e = not_found(geo, "geo.distance", name);
            if let ToolError::InvalidArguments { field: f, .. } = &mut e {
                *f = field.to_string();
            }
            Err(e)
        }
    }
}

fn utc_offset_hours(tz: &str) -> f64 {
    use chrono::{Offset, Utc};
    tz.parse::<chrono_tz::Tz>()
        .map(|z| Utc::now().with_timezone(&z).offset().fix().local_minus_utc() as f64 / 3600.0)
        .unwrap_or(0.0)
}

#[async_trait]
impl Tool for Distance {
    type Args = DistanceArgs;
    type Output = DistanceOut;

    fn name(&self) -> &str {
        "geo.distance"
    }
    fn description(&self) -> String {
        "Great-circle distance, rough flight time and time difference between two cities or airports.".into()
    }
    async fn call(&self, a: DistanceArgs, cx: &ToolContext) -> Result<DistanceOut, ToolError> {
        let geo = data::get(&cx.data_dir)
            .await
            .map_err(|e| ToolError::failed("geo.distance", e))?;
        let from = resolve(&geo, &a.from, "from")?;
        let to = resolve(&geo, &a.to, "to")?;
        let km = haversine_km(from.lat, from.lon, to.lat, to.lon);
        Ok(DistanceOut {
            km: km.round(),
            miles: (km / 1.609_344).round(),
            flight_hours: ((km / 850.0 + 0.5) * 10.0).round() / 10.0,
            time_difference_hours: utc_offset_hours(&to.tz) - utc_offset_hours(&from.tz),
            from: from.label,
            to: to.label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Option<ToolContext> {
        let cx = ToolContext::new(std::env::temp_dir());
        // The data is fetched by .ci/setup; without it these tests cannot say anything.
        cx.data_dir.join("airports.csv").exists().then_some(cx)
    }

    #[tokio::test]
    async fn lisbon_to_tokyo() {
        let Some(cx) = cx() else {
            panic!("offline data missing: run .ci/setup");
        };
        let d = Distance
            .call(
                DistanceArgs {
                    from: "Lisbon".into(),
                    to: "NRT".into(),
                },
                &cx,
            )
            .await
            .unwrap();
        assert!((11_000.0..11_300.0).contains(&d.km), "{d:?}");
        assert!(d.to.contains("Narita"), "{d:?}");
        assert!(d.time_difference_hours >= 8.0, "{d:?}");
        let c = CityLookup
            .call(
                CityArgs {
                    name: "lisboa".into(),
                    country: None,
                    limit: 1,
                },
                &cx,
            )
            .await
            .unwrap();
        assert_eq!(c[0].timezone, "Europe/Lisbon");
        let near = Airports
            .call(
                AirportsArgs {
                    code: None,
                    near: Some("Lisbon".into()),
                    within_km: None,
                    limit: 3,
                },
                &cx,
            )
            .await
            .unwrap();
        assert_eq!(near[0].airport.iata.as_deref(), Some("LIS"));
        let e = CityLookup
            .call(
                CityArgs {
                    name: "Lisbn".into(),
                    country: None,
                    limit: 1,
                },
                &cx,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `Lisbon`"), "{e}");
    }
}
