# Report math with a division-by-zero bug on empty periods.
module Reports
  def self.average_order(total, count)
    total / count
  end

  def self.daily(totals)
    totals.map { |t| average_order(t, 0) }
  end
end
