-- One row per day from the calendar source (connection demo_dates), keyed by yyyymmdd.
select
    cast(year * 10000 + month * 100 + day as integer) as date_key,
    date,
    year,
    quarter,
    month,
    day,
    day_of_week,
    iso_week,
    month_name,
    is_weekend
from {{ source('demo_dates', 'dates') }}
