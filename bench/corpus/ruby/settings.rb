# Per-tenant settings read with Hash#fetch: a missing key raises KeyError.
module Settings
  TENANTS = { "t1" => { "currency" => "EUR" } }

  def self.currency_for(tenant)
    TENANTS.fetch(tenant).fetch("currency")
  end
end
