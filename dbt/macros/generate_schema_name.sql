{#- Marts land in the profile's schema (inboxsync_marts); staging and intermediate views in
    <schema>_staging, out of BI users' way. dbt's default, written out so the layout is explicit. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
