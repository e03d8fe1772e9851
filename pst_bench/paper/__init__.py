"""The paper's published numbers (Tables 2-5) as package data: paper_results.csv."""
