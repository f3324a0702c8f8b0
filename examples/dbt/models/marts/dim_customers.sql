-- Customers as a type 2 dimension, one row per version that elt kept in the history table
-- (connection demo_history, write = "history"). Versions are valid in the source's time:
-- from the version's updated_at (the first version from the beginning of time) until the
-- next version's updated_at; the current version until the end of time, and a version
-- closed by a delete until elt saw the delete. elt's own load times are kept beside them.
with versions as (
    select
        *,
        row_number() over (partition by id order by _elt_valid_from) as version,
        lead(updated_at) over (partition by id order by _elt_valid_from) as next_updated_at
    from {{ source('demo_history', 'customers_history') }}
)

select
    md5(cast(id as varchar) || '|' || cast(version as varchar)) as customer_sk,
    id as customer_id,
    version,
    name,
    email,
    country,
    is_active,
    lifetime_value,
    case
        when version = 1 then timestamptz '1900-01-01 00:00:00+00'
        else updated_at
    end as valid_from,
    case
        when next_updated_at is not null then next_updated_at
        when _elt_is_current then timestamptz '9999-12-31 00:00:00+00'
        else _elt_valid_to
    end as valid_to,
    _elt_is_current as is_current,
    _elt_valid_from as loaded_from,
    _elt_valid_to as loaded_to
from versions
