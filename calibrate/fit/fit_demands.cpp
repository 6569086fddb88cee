// CPU demands by non-negative weighted least squares; the maths is in fit_demands.hpp.
#include "fit_demands.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {
namespace {

constexpr double dependence_tolerance = 1e-3;
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();

// One candidate term: its name, unit, what its column counts (for messages) and the column.
struct term_column {
  std::string name, unit, counts, label;
  double (*column)(const demand_step&);
};

std::vector<term_column> candidate_terms(const demand_fit_options& options) {
  std::vector<term_column> terms{{"request", "s per request", "requests", "request cost",
                                  [](const demand_step& s) { return s.requests; }}};
  if (options.background)
    terms.push_back({"background", "s per second", "window seconds", "background cost",
                     [](const demand_step& s) { return s.window_seconds; }});
  terms.push_back(
      {"dial", "s per dial", "dials", "dial cost", [](const demand_step& s) { return s.dials; }});
  terms.push_back({"close", "s per close", "closes", "close cost",
                   [](const demand_step& s) { return s.closes; }});
  if (options.load_dependent)
    terms.push_back({"request_per_runnable", "s per request per runnable task",
                     "requests x runnable tasks", "growth of the request cost with load",
                     [](const demand_step& s) { return s.requests * s.runnable; }});
  return terms;
}

// Least squares on the given columns of x; returns the coefficients.
Eigen::VectorXd solve(const Eigen::MatrixXd& x, const std::vector<int>& columns,
                      const Eigen::VectorXd& y) {
  Eigen::MatrixXd sub(x.rows(), static_cast<Eigen::Index>(columns.size()));
  for (std::size_t j = 0; j < columns.size(); ++j)
    sub.col(static_cast<Eigen::Index>(j)) = x.col(columns[j]);
  return sub.colPivHouseholderQr().solve(y);
}

double rss_of(const Eigen::MatrixXd& x, const std::vector<int>& columns, const Eigen::VectorXd& b,
              const Eigen::VectorXd& y) {
  Eigen::VectorXd fit = Eigen::VectorXd::Zero(y.size());
  for (std::size_t j = 0; j < columns.size(); ++j)
    fit += b(static_cast<Eigen::Index>(j)) * x.col(columns[j]);
  return (y - fit).squaredNorm();
}

struct nnls_solution {
  std::vector<int> positive;  // columns with a coefficient > 0
  Eigen::VectorXd b;          // their coefficients, in that order
  double rss = 0;
};

// Exact NNLS over the kept columns of the row-weighted system: the best all-non-negative subset
// solution (the empty set, all costs 0, to start).
nnls_solution nnls(const Eigen::MatrixXd& a, const Eigen::VectorXd& y, const Eigen::VectorXd& w,
                   const std::vector<int>& kept) {
  const Eigen::MatrixXd x = w.asDiagonal() * a;
  const Eigen::VectorXd wy = w.cwiseProduct(y);
  nnls_solution best{{}, Eigen::VectorXd(), wy.squaredNorm()};
  for (unsigned mask = 1; mask < (1u << kept.size()); ++mask) {
    std::vector<int> set;
    for (std::size_t k = 0; k < kept.size(); ++k)
      if (mask & (1u << k)) set.push_back(kept[k]);
    Eigen::VectorXd b = solve(x, set, wy);
    if ((b.array() < 0).any()) continue;
    double rss = rss_of(x, set, b, wy);
    if (rss < best.rss) best = {set, b, rss};
  }
  return best;
}

}  // namespace

const demand_term& demand_fit::term(const std::string& name) const {
  for (const auto& t : terms)
    if (t.name == name) return t;
  throw std::invalid_argument(owner + ": no CPU demand term named '" + name + "'");
}

double demand_fit::cost(const std::string& name) const {
  const demand_term& t = term(name);
  if (!t.fitted) throw std::domain_error(owner + ": " + t.reason);
  return t.value;
}

demand_fit fit_cpu_demands(const std::string& owner, const std::vector<demand_step>& steps,
                           const demand_fit_options& options) {
  if (steps.empty()) throw std::invalid_argument(owner + ": no load steps to fit CPU demands");
  for (const auto& s : steps) {
    if (!(s.cpu_seconds > 0))
      throw std::invalid_argument(owner + ": a step has no measured CPU (cpu seconds <= 0)");
    if (s.requests < 0 || s.dials < 0 || s.closes < 0 || s.runnable < 0 || s.window_seconds < 0)
      throw std::invalid_argument(owner + ": a step has a negative count");
  }
  const auto terms = candidate_terms(options);
  const auto n = static_cast<Eigen::Index>(steps.size());
  const auto p = static_cast<Eigen::Index>(terms.size());

  // The counts a, the CPU y, and the system weighted by 1 / y (for the identifiability check;
  // the fit below reweights).
  Eigen::MatrixXd a(n, p);
  Eigen::VectorXd raw_y(n);
  for (Eigen::Index s = 0; s < n; ++s) {
    const demand_step& step = steps[static_cast<std::size_t>(s)];
    raw_y(s) = step.cpu_seconds;
    for (Eigen::Index j = 0; j < p; ++j) a(s, j) = terms[static_cast<std::size_t>(j)].column(step);
  }
  Eigen::MatrixXd x = raw_y.cwiseInverse().asDiagonal() * a;

  // Too few steps first: otherwise every term past the n-th would be reported as a combination.
  Eigen::Index measured = 0;
  for (Eigen::Index j = 0; j < p; ++j) measured += x.col(j).norm() > 0 ? 1 : 0;
  if (n < measured) {
    std::ostringstream os;
    os << owner << ": " << n << " steps cannot fit " << measured << " CPU costs";
    throw std::invalid_argument(os.str());
  }

  demand_fit out;
  out.owner = owner;
  std::vector<int> kept;
  for (Eigen::Index j = 0; j < p; ++j) {
    const term_column& t = terms[static_cast<std::size_t>(j)];
    demand_term dt{t.name, t.unit, false, false, 0.0, not_a_number, ""};
    double norm = x.col(j).norm();
    double independent = norm > 0 ? 1.0 : 0.0;
    if (norm > 0 && !kept.empty()) {
      Eigen::VectorXd unit = x.col(j) / norm;
      independent = std::sqrt(rss_of(x, kept, solve(x, kept, unit), unit));
    }
    if (norm == 0) {
      dt.reason = t.label + " cannot be fitted: no step has any " + t.counts;
    } else if (independent < dependence_tolerance) {
      std::string others;
      for (int k : kept) others += (others.empty() ? "" : ", ") + terms[k].counts;
      dt.reason = t.label + " cannot be fitted: in every step the " + t.counts +
                  " are a linear combination of the " + others +
                  ", so their costs cannot be told apart (measure steps where they differ)";
    } else {
      kept.push_back(static_cast<int>(j));
    }
    if (!dt.reason.empty()) out.not_fitted.push_back(dt.reason);
    out.terms.push_back(dt);
  }
  if (kept.empty()) throw std::invalid_argument(owner + ": no CPU demand can be fitted");

  // Weights 1 / y first; then 1 / fitted, twice: dividing by the measured y gives the steps
  // whose noise happened to be negative more weight, a bias of the order of the squared
  // relative noise (negligible at 1 %, a few % for steps near the knee that vary by 20 %); the
  // fitted value carries no such noise.
  Eigen::VectorXd w = raw_y.cwiseInverse();
  nnls_solution best;
  for (int pass = 0; pass < 3; ++pass) {
    if (pass > 0) {
      Eigen::VectorXd fitted = Eigen::VectorXd::Zero(n);
      for (std::size_t j = 0; j < best.positive.size(); ++j)
        fitted += best.b(static_cast<Eigen::Index>(j)) * a.col(best.positive[j]);
      for (Eigen::Index s = 0; s < n; ++s) w(s) = fitted(s) > 0 ? 1.0 / fitted(s) : w(s);
    }
    best = nnls(a, raw_y, w, kept);
  }
  x = w.asDiagonal() * a;
  const std::vector<int>& best_set = best.positive;
  const Eigen::VectorXd& best_b = best.b;

  // Standard errors from the positive terms' covariance, HC3 (see the header).
  const auto dof = n - static_cast<Eigen::Index>(best_set.size());
  Eigen::MatrixXd covariance;
  if (!best_set.empty()) {
    Eigen::MatrixXd sub(n, static_cast<Eigen::Index>(best_set.size()));
    for (std::size_t j = 0; j < best_set.size(); ++j)
      sub.col(static_cast<Eigen::Index>(j)) = x.col(best_set[j]);
    const Eigen::MatrixXd bread = (sub.transpose() * sub).inverse();
    const Eigen::VectorXd e = w.cwiseProduct(raw_y) - sub * best_b;
    Eigen::VectorXd meat_weights(n);
    for (Eigen::Index s = 0; s < n; ++s) {
      double leverage = sub.row(s) * bread * sub.row(s).transpose();
      meat_weights(s) = leverage < 1.0 - 1e-9 ? std::pow(e(s) / (1.0 - leverage), 2) : not_a_number;
    }
    covariance = bread * sub.transpose() * meat_weights.asDiagonal() * sub * bread;
    if (dof <= 0) covariance.setConstant(not_a_number);
  }
  for (int k : kept) {
    demand_term& dt = out.terms[static_cast<std::size_t>(k)];
    dt.fitted = true;
    dt.clamped = true;
    for (std::size_t j = 0; j < best_set.size(); ++j) {
      if (best_set[j] != k) continue;
      auto jj = static_cast<Eigen::Index>(j);
      dt.clamped = false;
      dt.value = best_b(jj);
      dt.standard_error = std::sqrt(covariance(jj, jj));
    }
  }

  // Residuals and R^2 in CPU seconds.
  double mean_y = raw_y.mean(), rss = 0, tss = 0, rel = 0;
  for (Eigen::Index s = 0; s < n; ++s) {
    double fit = 0;
    for (Eigen::Index j = 0; j < p; ++j) {
      const demand_term& dt = out.terms[static_cast<std::size_t>(j)];
      if (dt.fitted) fit += dt.value * a(s, j);
    }
    out.predicted.push_back(fit);
    out.residual.push_back(raw_y(s) - fit);
    rss += (raw_y(s) - fit) * (raw_y(s) - fit);
    tss += (raw_y(s) - mean_y) * (raw_y(s) - mean_y);
    rel += std::pow((raw_y(s) - fit) / raw_y(s), 2);
  }
  out.r_squared = tss > 0 ? 1.0 - rss / tss : not_a_number;
  out.rms_relative_residual = std::sqrt(rel / static_cast<double>(n));
  return out;
}

}  // namespace headroom::calibrate
