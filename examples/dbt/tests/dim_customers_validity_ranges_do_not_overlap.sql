-- Fails with every pair of versions of one customer whose validity ranges overlap, and
-- every version whose range is empty.
select a.customer_id, a.version, b.version as overlapping_version
from {{ ref('dim_customers') }} as a
join {{ ref('dim_customers') }} as b
    on a.customer_id = b.customer_id
    and a.version < b.version
    and a.valid_from < b.valid_to
    and b.valid_from < a.valid_to
union all
select customer_id, version, null
from {{ ref('dim_customers') }}
where valid_from >= valid_to
