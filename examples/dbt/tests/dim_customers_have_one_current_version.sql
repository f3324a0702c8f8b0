-- Fails with every customer of the history table that has no current version or several.
select customer_id, count(*) filter (where is_current) as current_versions
from {{ ref('dim_customers') }}
group by customer_id
having count(*) filter (where is_current) <> 1
